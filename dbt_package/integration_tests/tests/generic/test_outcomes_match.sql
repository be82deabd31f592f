{#- Fails with every row of `expected` (raw_row_id, expected_outcome,
    expected_event_at, expected_amount) that the classified `model` lacks,
    classifies otherwise ('staged' when rejection_reason is NULL) or, for a
    staged row, parses to another timestamp or amount; and with every
    classified row that is not expected. Arguments under `arguments:`
    (unpacked here on dbt < 1.10). -#}
{% test outcomes_match(model, expected=none, arguments=none) %}
{%- set expected = expected if expected is not none else arguments['expected'] %}
with actual as (
    select raw_row_id, coalesce(rejection_reason, 'staged') as outcome, event_at, amount
    from {{ model }}
),

wanted as (
    select raw_row_id, expected_outcome, expected_event_at, expected_amount
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
