{#- Capture group `n` of the first match of `regex` in `text`; NULL when the
    regex does not match (DuckDB and Spark return '' there, which no group
    of the package's patterns can match, so '' is read as NULL). -#}
{% macro regex_group(text, regex, n) -%}
  {{- return(adapter.dispatch('regex_group', 'basemodel')(text, regex, n)) -}}
{%- endmacro %}

{% macro default__regex_group(text, regex, n) -%}
  (regexp_match({{ text }}, '{{ regex }}'))[{{ n }}]
{%- endmacro %}

{% macro duckdb__regex_group(text, regex, n) -%}
  nullif(regexp_extract({{ text }}, '{{ regex }}', {{ n }}), '')
{%- endmacro %}

{% macro spark__regex_group(text, regex, n) -%}
  nullif(regexp_extract({{ text }}, '{{ regex }}', {{ n }}), '')
{%- endmacro %}

{% macro snowflake__regex_group(text, regex, n) -%}
  regexp_substr({{ text }}, '{{ regex }}', 1, 1, 'e', {{ n }})
{%- endmacro %}

{% macro bigquery__regex_group(text, regex, n) -%}
  {#- BigQuery's REGEXP_EXTRACT takes a regex with at most one group. -#}
  {%- do exceptions.raise_compiler_error("basemodel: basemodel_time_format: pattern is not available on BigQuery; use basemodel_time_format: sql with PARSE_TIMESTAMP.") -%}
{%- endmacro %}
