{#-
  The elements of a list joined by `separator` into one string, in list order
  (an empty list gives ''). Elements are cast to text first. Handy to compare
  lists with expected values and to export them.
-#}
{% macro list_to_string(list, separator="'|'") -%}
  {{- return(adapter.dispatch('list_to_string', 'basemodel')(list, separator)) -}}
{%- endmacro %}

{% macro default__list_to_string(list, separator) -%}
  coalesce(array_to_string({{ list }}, {{ separator }}), '')
{%- endmacro %}

{% macro duckdb__list_to_string(list, separator) -%}
  coalesce(array_to_string(cast({{ list }} as varchar[]), {{ separator }}), '')
{%- endmacro %}

{% macro postgres__list_to_string(list, separator) -%}
  coalesce(array_to_string(cast({{ list }} as text[]), {{ separator }}), '')
{%- endmacro %}

{% macro snowflake__list_to_string(list, separator) -%}
  array_to_string({{ list }}, {{ separator }})
{%- endmacro %}

{% macro bigquery__list_to_string(list, separator) -%}
  (select coalesce(string_agg(cast(element as string), {{ separator }} order by position), '')
   from unnest({{ list }}) as element with offset as position)
{%- endmacro %}

{% macro spark__list_to_string(list, separator) -%}
  array_join(transform({{ list }}, x -> cast(x as string)), {{ separator }})
{%- endmacro %}
