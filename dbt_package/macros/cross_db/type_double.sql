{#- The 8-byte floating point type (basemodel.type_double() is 4 bytes on DuckDB). -#}
{% macro type_double() -%}
  {{- return(adapter.dispatch('type_double', 'basemodel')()) -}}
{%- endmacro %}

{% macro default__type_double() -%}
  double precision
{%- endmacro %}

{% macro duckdb__type_double() -%}
  double
{%- endmacro %}

{% macro bigquery__type_double() -%}
  float64
{%- endmacro %}

{% macro spark__type_double() -%}
  double
{%- endmacro %}
