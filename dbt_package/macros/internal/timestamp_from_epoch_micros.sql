{#- The timestamp (without time zone, UTC) `micros` microseconds after
    1970-01-01 00:00:00; `micros` is a whole number within years 1 to 9999
    (parse_event_time checks the range first). -#}
{% macro timestamp_from_epoch_micros(micros) -%}
  {{- return(adapter.dispatch('timestamp_from_epoch_micros', 'basemodel')(micros)) -}}
{%- endmacro %}

{% macro default__timestamp_from_epoch_micros(micros) -%}
  (cast('1970-01-01 00:00:00' as {{ dbt.type_timestamp() }}) + ({{ micros }}) * interval '1 microsecond')
{%- endmacro %}

{% macro duckdb__timestamp_from_epoch_micros(micros) -%}
  make_timestamp(cast({{ micros }} as bigint))
{%- endmacro %}

{% macro spark__timestamp_from_epoch_micros(micros) -%}
  timestamp_micros(cast({{ micros }} as bigint))
{%- endmacro %}

{% macro snowflake__timestamp_from_epoch_micros(micros) -%}
  to_timestamp_ntz(cast({{ micros }} as bigint), 6)
{%- endmacro %}

{% macro bigquery__timestamp_from_epoch_micros(micros) -%}
  timestamp_micros(cast({{ micros }} as int64))
{%- endmacro %}
