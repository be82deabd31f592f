{#- Valid, typed, deduplicated events. With basemodel_incremental a run reads
    only the source rows that may be new and appends the events not staged
    yet. The window looks back basemodel_incremental_lookback_days from the
    latest staged loaded_at (with basemodel_loaded_at_column; rows without a
    loaded_at are always read) or from the latest staged event time, and its
    bound is inclusive: rows loaded in the same instant as the last staged
    ones are read again, never skipped. A row that arrives after the window
    has passed it (a late event) is not lost: basemodel_rejected_events
    holds it as late_event until a --full-refresh stages it. -#}
{%- set s = basemodel.settings() -%}
{{ config(
    materialized=('incremental' if s.incremental else 'table'),
    incremental_strategy='append',
    on_schema_change='fail',
) }}

{%- set where = none -%}
{%- if is_incremental() -%}
  {%- set window_column = 'loaded_at' if s.loaded_at_column else 'event_at' -%}
  {%- set where = window_column ~ " >= (select " ~ dbt.dateadd('day', -1 * s.incremental_lookback_days, 'max(' ~ window_column ~ ')') ~ " from " ~ this ~ ")" -%}
  {%- if s.loaded_at_column -%}
    {%- set where = "(" ~ where ~ " or loaded_at is null)" -%}
  {%- endif -%}
{%- endif %}

with parsed as (
    {{ basemodel.parsed_events(where=where) }}
)

select
    source_row_id,
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
