-- Lists as '|'-joined text (NULL for an empty list, as a seed reads '').
select
    entity_id,
    group_id,
    n_events,
    first_event_at,
    last_event_at,
    nullif({{ basemodel.list_to_string('event_types') }}, '') as event_types,
    nullif({{ basemodel.list_to_string('product_items') }}, '') as product_items,
    nullif({{ basemodel.list_to_string('category_items') }}, '') as category_items,
    nullif({{ basemodel.list_to_string('brand_items') }}, '') as brand_items
from {{ ref('basemodel_hyperedges') }}
