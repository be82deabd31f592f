{#- Number of elements of a list; 0 for an empty list. -#}
{% macro list_length(list) -%}
  {{- return(adapter.dispatch('list_length', 'basemodel')(list)) -}}
{%- endmacro %}

{% macro default__list_length(list) -%}
  coalesce(cardinality({{ list }}), 0)
{%- endmacro %}

{% macro duckdb__list_length(list) -%}
  len({{ list }})
{%- endmacro %}

{% macro snowflake__list_length(list) -%}
  array_size({{ list }})
{%- endmacro %}

{% macro bigquery__list_length(list) -%}
  array_length({{ list }})
{%- endmacro %}

{% macro spark__list_length(list) -%}
  size({{ list }})
{%- endmacro %}
