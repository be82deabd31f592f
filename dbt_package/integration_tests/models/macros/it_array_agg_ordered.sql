-- Nulls are left out, ties are broken by the second key, an all-null group
-- gives an empty list.
with lists as (
    select
        group_key,
        {{ basemodel.array_agg_ordered('value', ['sort_key', 'tiebreak']) }} as agg
    from {{ ref('data_array_agg_ordered') }}
    group by group_key
)

select
    group_key,
    nullif({{ basemodel.list_to_string('agg') }}, '') as joined,
    cast({{ basemodel.list_length('agg') }} as integer) as n_values
from lists
