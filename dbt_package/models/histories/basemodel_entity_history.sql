{#- One row per (split, entity with at least one event in its history
    window): the history as aligned lists in event order (event_types,
    event_times and decay_weights have one element per event; each
    <item>_items list has one element per event where that item is not NULL,
    aligned with its <item>_weights), and the RFM inputs: event and group
    (order, session) counts, total and mean amount, first and last event.
    group_ids lists the distinct groups, ordered by their last event
    (group_last_event_times), and n_amounts counts the non-NULL amounts:
    with them new events fold into a stored history exactly
    (sklearn_basemodel.workflow.fold). With basemodel_incremental a run only
    adds the splits later than those already built. -#}
{%- set s = basemodel.settings() -%}
{{ config(
    materialized=('incremental' if s.incremental else 'table'),
    incremental_strategy='delete+insert',
    unique_key=['split_at', 'entity_id'],
    on_schema_change='fail',
) }}
{%- set lists = [
    ['event_types', 'event_type'],
    ['event_times', 'event_at'],
    ['decay_weights', 'decay_weight'],
] -%}
{%- for item in s.item_columns -%}
  {%- do lists.append([item.name ~ '_items', item.name]) -%}
  {%- do lists.append([item.name ~ '_weights', 'case when ' ~ item.name ~ ' is not null then decay_weight end']) -%}
{%- endfor %}

with history_events as (
    select *
    from {{ ref('basemodel_history_events') }}
    {%- if is_incremental() %}
    where split_at > (select max(split_at) from {{ this }})
    {%- endif %}
),

{#- One row per group of each history, and one for its events without a
    group, so that every history has a row: aggregating the groups apart
    costs less than a window over the events. #}
group_ends as (
    select split_id, entity_id, group_id, max(event_at) as group_last_event_at
    from history_events
    group by split_id, entity_id, group_id
),

group_lists as (
    {{ basemodel.grouped_lists(
        relation='group_ends',
        group_by=['split_id', 'entity_id'],
        order_by=['group_last_event_at', 'group_id'],
        aggregates=[['n_groups', 'count(group_id)']],
        lists=[
            ['group_ids', 'group_id'],
            ['group_last_event_times', 'case when group_id is not null then group_last_event_at end'],
        ],
    ) | indent(4) }}
),

event_lists as (
    {{ basemodel.grouped_lists(
        relation='history_events',
        group_by=['split_id', 'split_at', 'entity_id'],
        order_by=['event_at', 'event_id'],
        aggregates=[
            ['n_events', 'count(*)'],
            ['first_event_at', 'min(event_at)'],
            ['last_event_at', 'max(event_at)'],
            ['days_since_last_event', 'min(days_before_split)'],
            ['days_since_first_event', 'max(days_before_split)'],
            ['decay_weight_sum', 'sum(decay_weight)'],
            ['total_amount', ('coalesce(sum(amount), 0)' if s.amount_column else 'cast(null as ' ~ basemodel.type_double() ~ ')')],
            ['mean_amount', ('avg(amount)' if s.amount_column else 'cast(null as ' ~ basemodel.type_double() ~ ')')],
            ['n_amounts', 'count(amount)'],
        ],
        lists=lists,
    ) | indent(4) }}
)

select
    event_lists.*,
    group_lists.n_groups,
    group_lists.group_ids,
    group_lists.group_last_event_times
from event_lists
inner join group_lists
    on event_lists.split_id = group_lists.split_id
    and event_lists.entity_id = group_lists.entity_id
