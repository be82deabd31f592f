{#- `expression` as trimmed text (trim_blanks), NULL when nothing is left:
    how the package reads every text value of the source. -#}
{% macro blank_to_null(expression) -%}
  nullif({{ basemodel.trim_blanks('cast(' ~ expression ~ ' as ' ~ dbt.type_string() ~ ')') }}, '')
{%- endmacro %}
