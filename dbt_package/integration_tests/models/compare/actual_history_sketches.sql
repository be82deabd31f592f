select split_id, entity_id, position, cast(value as numeric(28, 6)) as value
from {{ ref('basemodel_history_sketches') }}
