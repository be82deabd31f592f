{#-
  Parse `expression` into a double precision number; NULL when it is not a
  plain decimal number such as 12, -3.5, .5 or 1.2e3 (surrounding blanks are
  ignored). '12,50', 'NaN', 'inf' and '' give NULL on every adapter. The
  grammar bounds the magnitude so no adapter can overflow.
-#}
{% macro try_cast_number(expression) -%}
  {{- return(adapter.dispatch('try_cast_number', 'basemodel')(expression)) -}}
{%- endmacro %}

{% macro default__try_cast_number(expression) -%}
  {{ dbt.safe_cast(expression, basemodel.type_double()) }}
{%- endmacro %}

{% macro duckdb__try_cast_number(expression) -%}
  {%- set text = "trim(cast(" ~ expression ~ " as varchar))" -%}
  (case when regexp_full_match({{ text }}, '{{ basemodel.number_pattern() }}')
        then cast({{ text }} as double) end)
{%- endmacro %}

{% macro postgres__try_cast_number(expression) -%}
  {%- set text = "trim(cast(" ~ expression ~ " as text))" -%}
  (case when {{ text }} ~ '{{ basemodel.number_pattern() }}'
        then cast({{ text }} as double precision) end)
{%- endmacro %}

{% macro snowflake__try_cast_number(expression) -%}
  {%- set text = "trim(to_varchar(" ~ expression ~ "))" -%}
  (case when regexp_like({{ text }}, '{{ basemodel.number_pattern() }}')
        then try_to_double({{ text }}) end)
{%- endmacro %}

{% macro bigquery__try_cast_number(expression) -%}
  {%- set text = "trim(cast(" ~ expression ~ " as string))" -%}
  (case when regexp_contains({{ text }}, r'{{ basemodel.number_pattern() }}')
        then safe_cast({{ text }} as float64) end)
{%- endmacro %}

{% macro spark__try_cast_number(expression) -%}
  {%- set text = "trim(cast(" ~ expression ~ " as string))" -%}
  (case when {{ text }} rlike '{{ basemodel.number_pattern() }}'
        then try_cast({{ text }} as double) end)
{%- endmacro %}
