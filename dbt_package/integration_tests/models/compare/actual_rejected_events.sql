select raw_row_id, rejection_reason
from {{ ref('basemodel_rejected_events') }}
