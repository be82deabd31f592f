select raw_value, {{ basemodel.try_cast_timestamp('raw_value') }} as parsed
from {{ ref('data_try_cast_timestamp') }}
