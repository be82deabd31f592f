{#- Valid, typed, deduplicated events. With basemodel_incremental a run only
    reads source rows newer than what is already staged (by loaded_at when
    basemodel_loaded_at_column is set, else by event time minus
    basemodel_incremental_lookback_days) and appends the events not yet
    present. -#}
{%- set s = basemodel.settings() -%}
{{ config(
    materialized=('incremental' if s.incremental else 'table'),
    incremental_strategy='append',
    on_schema_change='fail',
) }}

{%- set where = none -%}
{%- if is_incremental() -%}
  {%- if s.loaded_at_column -%}
    {%- set where = "loaded_at > (select max(loaded_at) from " ~ this ~ ")" -%}
  {%- else -%}
    {%- set where = "event_at >= (select " ~ dbt.dateadd('day', -1 * s.incremental_lookback_days, 'max(event_at)') ~ " from " ~ this ~ ")" -%}
  {%- endif -%}
{%- endif %}

with parsed as (
    {{ basemodel.parsed_events(where=where) }}
)

select
    event_id,
    entity_id,
    event_at,
    event_type,
    {%- for item in s.item_columns %}
    {{ item.name }},
    {%- endfor %}
    group_id,
    amount,
    loaded_at
    {%- for column in s.passthrough_columns %},
    {{ column }}
    {%- endfor %}
from parsed
where rejection_reason is null
{%- if is_incremental() %}
    and not exists (select 1 from {{ this }} as staged where staged.event_id = parsed.event_id)
{%- endif %}
