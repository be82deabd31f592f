{#-
  Fractional number of days from timestamp `start` to timestamp `end`
  (positive when `end` is later), with microsecond precision where the
  warehouse has it. Used for decay weights and recency.
-#}
{% macro days_between(start, end) -%}
  {{- return(adapter.dispatch('days_between', 'basemodel')(start, end)) -}}
{%- endmacro %}

{% macro default__days_between(start, end) -%}
  ({{ dbt.datediff(start, end, 'second') }} / 86400.0)
{%- endmacro %}

{% macro duckdb__days_between(start, end) -%}
  ((epoch_us({{ end }}) - epoch_us({{ start }})) / 86400000000.0)
{%- endmacro %}

{% macro postgres__days_between(start, end) -%}
  (cast(extract(epoch from ({{ end }}) - ({{ start }})) as double precision) / 86400.0)
{%- endmacro %}

{% macro snowflake__days_between(start, end) -%}
  (timestampdiff(microsecond, {{ start }}, {{ end }}) / 86400000000.0)
{%- endmacro %}

{% macro bigquery__days_between(start, end) -%}
  (timestamp_diff({{ end }}, {{ start }}, microsecond) / 86400000000.0)
{%- endmacro %}

{% macro spark__days_between(start, end) -%}
  ((unix_micros({{ end }}) - unix_micros({{ start }})) / 86400000000.0)
{%- endmacro %}
