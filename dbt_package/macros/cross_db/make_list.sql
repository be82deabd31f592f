{#-
  A list literal of `values` (SQL expressions) with elements of type
  `element_type`, e.g. make_list(["'a'", "'b'"], dbt.type_string()).
  An empty `values` gives a typed empty list.
-#}
{% macro make_list(values, element_type) -%}
  {{- return(adapter.dispatch('make_list', 'basemodel')(values, element_type)) -}}
{%- endmacro %}

{% macro default__make_list(values, element_type) -%}
  cast(array[{{ values | join(', ') }}] as {{ element_type }}[])
{%- endmacro %}

{% macro duckdb__make_list(values, element_type) -%}
  cast([{{ values | join(', ') }}] as {{ element_type }}[])
{%- endmacro %}

{% macro snowflake__make_list(values, element_type) -%}
  {#- Snowflake arrays are untyped (VARIANT elements). -#}
  array_construct({{ values | join(', ') }})
{%- endmacro %}

{% macro bigquery__make_list(values, element_type) -%}
  array<{{ element_type }}>[{{ values | join(', ') }}]
{%- endmacro %}

{% macro spark__make_list(values, element_type) -%}
  cast(array({{ values | join(', ') }}) as array<{{ element_type }}>)
{%- endmacro %}
