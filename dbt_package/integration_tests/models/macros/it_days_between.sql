select
    start_at,
    end_at,
    cast({{ basemodel.days_between('start_at', 'end_at') }} as numeric(28, 6)) as days
from {{ ref('data_days_between') }}
