-- make_list builds typed lists, including the empty one.
select
    {{ basemodel.list_to_string(basemodel.make_list(["'a'", "'b'", "'c'"], dbt.type_string())) }} as joined,
    {{ basemodel.list_length(basemodel.make_list(["'a'", "'b'", "'c'"], dbt.type_string())) }} as n_values,
    {{ basemodel.list_length(basemodel.make_list([], dbt.type_string())) }} as n_empty,
    {{ basemodel.list_to_string(basemodel.make_list(['1', '2'], dbt.type_int()), "'-'") }} as joined_ints
