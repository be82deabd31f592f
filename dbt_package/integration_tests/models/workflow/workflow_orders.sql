-- A user's own staging model over their raw orders, as tests/test_dbt_workflow.py builds it:
-- it renames columns and derives the amount, and the package reads it through
-- basemodel_events_model (a ref, so dbt builds this view first). Off unless
-- workflow_orders_enabled is true: the raw table only exists in that test.
{{ config(materialized='view', enabled=var('workflow_orders_enabled', false)) }}

select
    line_no,
    shopper as customer_ref,
    ts_ms as placed_at_ms,
    sku,
    dept,
    action,
    price_cents / 100.0 as price
from {{ source('workflow_shop', 'raw_orders') }}
