{#- The timestamp grammar of try_cast_timestamp as a regular expression that
    POSIX (Postgres), RE2 (DuckDB, BigQuery) and Java (Spark, Snowflake)
    engines read the same way; `[.]` instead of `\.` survives every string
    literal escaping rule. -#}
{% macro iso_timestamp_pattern() -%}
  ^[1-9][0-9]{3}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])([ T]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9]([.][0-9]{1,9})?)?(Z|[+-]([01][0-9]|2[0-3])(:?[0-5][0-9])?)?)?$
{%- endmacro %}
