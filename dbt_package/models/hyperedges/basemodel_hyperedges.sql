{#- One hyperedge per (entity, group): the basket, session or - without a
    group column - the entity's whole event history, with the items of each
    item column in event order. With basemodel_session_gap_minutes the
    groups are sessions split at pauses longer than the gap (grouped_events).
    Events whose group is NULL belong to no hyperedge (they stay in
    basemodel_stg_events and the histories). -#}
{%- set s = basemodel.settings() -%}
{%- set lists = [['event_types', 'event_type']] -%}
{%- for item in s.item_columns -%}
  {%- do lists.append([item.name ~ '_items', item.name]) -%}
{%- endfor %}

with events as (
    {{ basemodel.grouped_events(ref('basemodel_stg_events')) | indent(4) }}
),

grouped_events as (
    select *
    from events
    where group_id is not null
)

{{ basemodel.grouped_lists(
    relation='grouped_events',
    group_by=['entity_id', 'group_id'],
    order_by=['event_at', 'event_id'],
    aggregates=[
        ['first_event_at', 'min(event_at)'],
        ['last_event_at', 'max(event_at)'],
        ['n_events', 'count(*)'],
    ],
    lists=lists,
) }}
