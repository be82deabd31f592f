{#- Each staged event once per split it precedes: split_at minus
    basemodel_history_days (if set) < event_at <= split_at, with its age and
    decay weight exp(-basemodel_decay_rate * days_before_split). The one place
    that decides which events make a history; histories and in-warehouse
    sketches aggregate it. group_id is the basket, order or session
    (grouped_events). -#}
{{ config(materialized='view') }}
{%- set s = basemodel.settings() -%}
{%- set days_before = basemodel.days_between('events.event_at', 'splits.split_at') %}

with events as (
    {{ basemodel.grouped_events(ref('basemodel_stg_events')) | indent(4) }}
)

select
    splits.split_id,
    splits.split_at,
    events.entity_id,
    events.event_id,
    events.event_at,
    events.event_type,
    {%- for item in s.item_columns %}
    events.{{ item.name }},
    {%- endfor %}
    events.group_id,
    events.amount,
    {{ days_before }} as days_before_split,
    exp(-{{ s.decay_rate }} * {{ days_before }}) as decay_weight
from events
inner join {{ ref('basemodel_splits') }} as splits
    on events.event_at <= splits.split_at
    {%- if s.history_days %}
    {#- In whole seconds: adapters truncate a fractional count of days (0.05 day -> 0). #}
    and events.event_at > {{ dbt.dateadd('second', -1 * (s.history_days * 86400) | round | int, 'splits.split_at') }}
    {%- endif %}
