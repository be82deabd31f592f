{#- One row per split point (basemodel_split_times): histories use the events
    at or before split_at, targets those in (split_at, horizon_end_at]. A
    split whose horizon ends after the last staged event has incomplete
    targets (is_horizon_complete = false): use it to score, not to train.
    basemodel_as_of adds one more cut-off (is_as_of): a time, or 'now', the
    latest staged event time, so histories exist as of then for scoring. -#}
{%- set s = basemodel.settings() -%}
{%- set times = basemodel.split_times() -%}
{%- if execute and times | length == 0 and s.as_of is none -%}
  {%- do exceptions.raise_compiler_error("basemodel: no split points. Set `basemodel_split_times` to a list of timestamps (['2024-03-01']) or to rolling splits ({start: '2024-01-01', end: '2024-06-01', every_days: 7}), or disable the history models: models: {basemodel: {histories: {+enabled: false}}}.") -%}
{%- endif -%}
{%- set timestamp = dbt.type_timestamp() %}

with data_end as (
    select max(event_at) as last_event_at
    from {{ ref('basemodel_stg_events') }}
),

cut_offs as (
    {%- for time in times %}
    select cast('{{ time }}' as {{ timestamp }}) as split_at, 0 as is_as_of
    union all
    {%- endfor %}
    {#- Named: with no split_times this select is the first of the union, which names the columns. #}
    {%- if s.as_of == 'now' %}
    select last_event_at as split_at, 1 as is_as_of from data_end
    {%- elif s.as_of is not none %}
    select cast('{{ s.as_of }}' as {{ timestamp }}) as split_at, 1 as is_as_of from data_end
    {%- else %}
    select split_at, 0 from (select cast(null as {{ timestamp }}) as split_at) as no_as_of
    {%- endif %}
),

{#- An as-of time equal to a split time is that split. #}
split_points as (
    select
        cast(row_number() over (order by split_at) as {{ dbt.type_int() }}) as split_id,
        split_at,
        max(is_as_of) = 1 as is_as_of
    from cut_offs
    where split_at is not null
    group by split_at
)

select
    split_points.split_id,
    split_points.split_at,
    split_points.is_as_of,
    {{ dbt.dateadd('day', s.horizon_days, 'split_points.split_at') }} as horizon_end_at,
    cast({{ s.horizon_days }} as {{ dbt.type_int() }}) as horizon_days,
    coalesce(data_end.last_event_at >= {{ dbt.dateadd('day', s.horizon_days, 'split_points.split_at') }}, false)
        as is_horizon_complete
from split_points
cross join data_end
