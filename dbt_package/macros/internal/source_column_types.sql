{#-
  The columns of `relation` as {lower-case name: dbt Column}, read from the
  warehouse when dbt executes (empty while parsing, and for a relation that
  does not exist, such as the mocked inputs of a unit test: callers then
  treat every column as text). Lets typed source columns skip text parsing.
-#}
{% macro source_column_types(relation) -%}
  {%- set types = {} -%}
  {%- if execute -%}
    {%- for column in adapter.get_columns_in_relation(relation) -%}
      {%- do types.update({column.name | lower: column}) -%}
    {%- endfor -%}
  {%- endif -%}
  {{- return(types) -}}
{%- endmacro %}
