{#- `expression` (text) without leading and trailing ASCII white space:
    space, tab, line feed, vertical tab, form feed and carriage return. SQL's
    plain trim() removes spaces only, so a value of '\t' or '\r\n' would pass
    as an entity, event type or timestamp. -#}
{% macro trim_blanks(expression) -%}
  {{- return(adapter.dispatch('trim_blanks', 'basemodel')(expression)) -}}
{%- endmacro %}

{% macro default__trim_blanks(expression) -%}
  trim(both ' ' || chr(9) || chr(10) || chr(11) || chr(12) || chr(13) from {{ expression }})
{%- endmacro %}

{% macro snowflake__trim_blanks(expression) -%}
  trim({{ expression }}, ' ' || chr(9) || chr(10) || chr(11) || chr(12) || chr(13))
{%- endmacro %}

{% macro bigquery__trim_blanks(expression) -%}
  trim({{ expression }}, code_points_to_string([32, 9, 10, 11, 12, 13]))
{%- endmacro %}
