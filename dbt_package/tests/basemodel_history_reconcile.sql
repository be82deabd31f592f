-- Per split, the histories hold exactly the events of basemodel_history_events,
-- and within a history the aligned lists have the lengths they promise.
{%- set s = basemodel.settings() %}
with histories as (
    select
        split_at,
        sum(n_events) as events_in_histories,
        sum(case when {{ basemodel.list_length('event_types') }} <> n_events
                   or {{ basemodel.list_length('event_times') }} <> n_events
                   or {{ basemodel.list_length('decay_weights') }} <> n_events
            {%- for item in s.item_columns %}
                   or {{ basemodel.list_length(item.name ~ '_items') }} <> {{ basemodel.list_length(item.name ~ '_weights') }}
                   or {{ basemodel.list_length(item.name ~ '_items') }} > n_events
            {%- endfor %}
            then 1 else 0 end) as misaligned_histories
    from {{ ref('basemodel_entity_history') }}
    group by split_at
),

events as (
    select split_at, count(*) as history_events
    from {{ ref('basemodel_history_events') }}
    group by split_at
)

select
    coalesce(histories.split_at, events.split_at) as split_at,
    histories.events_in_histories,
    events.history_events,
    histories.misaligned_histories
from histories
full outer join events
    on histories.split_at = events.split_at
where histories.events_in_histories is null
   or events.history_events is null
   or histories.events_in_histories <> events.history_events
   or histories.misaligned_histories > 0
