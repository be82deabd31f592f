{#- One row per split point (basemodel_split_times): histories use the events
    at or before split_at, targets those in (split_at, horizon_end_at]. A
    split whose horizon ends after the last staged event has incomplete
    targets (is_horizon_complete = false): use it to score, not to train. -#}
{%- set s = basemodel.settings() -%}
{%- set times = basemodel.split_times() -%}
{%- if execute and times | length == 0 -%}
  {%- do exceptions.raise_compiler_error("basemodel: no split points. Set `basemodel_split_times` to a list of timestamps (['2024-03-01']) or to rolling splits ({start: '2024-01-01', end: '2024-06-01', every_days: 7}), or disable the history models: models: {basemodel: {histories: {+enabled: false}}}.") -%}
{%- endif -%}
{%- set timestamp = dbt.type_timestamp() %}

with split_points as (
    {%- for time in times %}
    select
        cast({{ loop.index }} as {{ dbt.type_int() }}) as split_id,
        cast('{{ time }}' as {{ timestamp }}) as split_at
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
),

data_end as (
    select max(event_at) as last_event_at
    from {{ ref('basemodel_stg_events') }}
)

select
    split_points.split_id,
    split_points.split_at,
    {{ dbt.dateadd('day', s.horizon_days, 'split_points.split_at') }} as horizon_end_at,
    cast({{ s.horizon_days }} as {{ dbt.type_int() }}) as horizon_days,
    coalesce(data_end.last_event_at >= {{ dbt.dateadd('day', s.horizon_days, 'split_points.split_at') }}, false)
        as is_horizon_complete
from split_points
cross join data_end
