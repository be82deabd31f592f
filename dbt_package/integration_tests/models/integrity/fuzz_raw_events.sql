-- The nasty raw rows of seeds/integrity/fuzz_events.csv with their white space decoded:
-- the source of the package in tests/test_dbt_integrity.py, and of fuzz_outcomes here.
{{ config(materialized='table') }}
select
    raw_row_id,
    {%- for column in ['customer_id', 'event_time', 'event_type', 'product', 'category', 'brand', 'basket_id', 'amount'] %}
    {{ decode_fuzz_tokens(column) }} as {{ column }},
    {%- endfor %}
    loaded_at,
    expected_outcome,
    expected_event_at,
    expected_amount
from {{ ref('fuzz_events') }}
