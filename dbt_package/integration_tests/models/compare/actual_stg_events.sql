select raw_row_id, entity_id, event_at, event_type, product, category, brand, group_id, amount
from {{ ref('basemodel_stg_events') }}
