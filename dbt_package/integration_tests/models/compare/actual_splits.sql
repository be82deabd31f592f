select split_id, split_at, horizon_end_at, horizon_days, is_horizon_complete
from {{ ref('basemodel_splits') }}
