{#- Fails with every row of `expected` (raw_row_id, expected_outcome,
    expected_event_at, expected_amount) that the classified `model` lacks,
    classifies otherwise ('staged' when rejection_reason is NULL) or, for a
    staged row, parses to another timestamp or amount; and with every
    classified row that is not expected. Arguments under `arguments:`
    (unpacked here on dbt < 1.10). With `infinity_loads_as_null` true
    (typed timestamp seeds on Spark, whose timestamp type has no infinity: the
    cell loads as NULL), an expected infinite_timestamp reads null_timestamp. -#}
{% test outcomes_match(model, expected=none, infinity_loads_as_null=false, arguments=none) %}
{%- set arguments = arguments or {} %}
{%- set expected = expected if expected is not none else arguments['expected'] %}
{%- set as_null = infinity_loads_as_null or arguments.get('infinity_loads_as_null', false) %}
{%- set as_null = as_null in (true, 'True', 'true') %}
with actual as (
    select raw_row_id, coalesce(rejection_reason, 'staged') as outcome, event_at, amount
    from {{ model }}
),

wanted as (
    select
        raw_row_id,
        {% if as_null -%}
        case when expected_outcome = 'infinite_timestamp' then 'null_timestamp'
             else expected_outcome end as expected_outcome,
        {%- else -%}
        expected_outcome,
        {%- endif %}
        expected_event_at,
        expected_amount
    from {{ expected }}
)

select
    coalesce(actual.raw_row_id, wanted.raw_row_id) as raw_row_id,
    actual.outcome,
    wanted.expected_outcome,
    actual.event_at,
    wanted.expected_event_at,
    actual.amount,
    wanted.expected_amount
from actual
full outer join wanted
    on actual.raw_row_id = wanted.raw_row_id
where actual.raw_row_id is null
   or wanted.raw_row_id is null
   or actual.outcome <> wanted.expected_outcome
   or (wanted.expected_outcome = 'staged'
       and (actual.event_at <> wanted.expected_event_at
            or (actual.amount is null) <> (wanted.expected_amount is null)
            or actual.amount <> wanted.expected_amount))
{% endtest %}
