select
    split_at,
    entity_id,
    is_horizon_complete,
    n_future_events,
    in_churn_population,
    churned,
    propensity_purchase,
    propensity_add_to_cart,
    propensity_category_books,
    future_spend,
    nullif({{ basemodel.list_to_string('future_event_types') }}, '') as future_event_types,
    nullif({{ basemodel.list_to_string('future_product_items') }}, '') as future_product_items,
    nullif({{ basemodel.list_to_string('future_category_items') }}, '') as future_category_items,
    nullif({{ basemodel.list_to_string('future_brand_items') }}, '') as future_brand_items
from {{ ref('basemodel_entity_targets') }}
