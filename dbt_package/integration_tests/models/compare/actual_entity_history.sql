-- Lists as '|'-joined text, floating point values rounded to 6 decimals.
select
    split_at,
    entity_id,
    n_events,
    first_event_at,
    last_event_at,
    nullif({{ basemodel.list_to_string('event_types') }}, '') as event_types,
    nullif({{ basemodel.list_to_string('product_items') }}, '') as product_items,
    nullif({{ basemodel.list_to_string('category_items') }}, '') as category_items,
    nullif({{ basemodel.list_to_string('brand_items') }}, '') as brand_items,
    cast(decay_weight_sum as numeric(28, 6)) as decay_weight_sum,
    cast(days_since_last_event as numeric(28, 6)) as days_since_last_event,
    total_amount
from {{ ref('basemodel_entity_history') }}
