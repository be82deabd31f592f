-- Each staged event with a group lies in exactly one hyperedge, and every
-- list of a hyperedge has at most one element per event (event_types exactly one).
{%- set s = basemodel.settings() %}
with edges as (
    select
        coalesce(sum(n_events), 0) as events_in_hyperedges,
        coalesce(sum(case when {{ basemodel.list_length('event_types') }} <> n_events
            {%- for item in s.item_columns %}
            or {{ basemodel.list_length(item.name ~ '_items') }} > n_events
            {%- endfor %}
            then 1 else 0 end), 0) as malformed_hyperedges
    from {{ ref('basemodel_hyperedges') }}
),

events as (
    select count(*) as grouped_events
    from {{ ref('basemodel_stg_events') }}
    where group_id is not null
)

select *
from edges
cross join events
where events_in_hyperedges <> grouped_events or malformed_hyperedges > 0
