{#-
  Parse `expression` (text, or a timestamp column) into a timestamp without
  time zone in UTC; NULL when it cannot be parsed. The same strict ISO 8601
  grammar is accepted on every adapter so a row is valid or rejected the same
  way everywhere:

      YYYY-MM-DD[( |T)HH:MM[:SS[.fraction]][Z|+HH|+HHMM|+HH:MM|-...]]

  A time zone offset is converted to UTC; without one the value is taken as
  UTC. Impossible dates (2024-02-30), 24:00, words ('yesterday', 'infinity')
  and other layouts ('05/01/2024') give NULL. Surrounding white space (tabs,
  line breaks) is ignored.

  `column` (a dbt Column, optional) is the source column's type: a timestamp
  without time zone or a date is cast directly, without a round trip through
  text (its infinite values, where the adapter has them, stay infinite: the
  caller rejects them by their text). Other types, time zone aware
  timestamps included, are read through their text, which carries the offset.
-#}
{% macro try_cast_timestamp(expression, column=none) -%}
  {%- if column is not none and (column.dtype | lower) in basemodel.plain_timestamp_types() -%}
    {{- return('cast(' ~ expression ~ ' as ' ~ dbt.type_timestamp() ~ ')') -}}
  {%- endif -%}
  {{- return(adapter.dispatch('try_cast_timestamp', 'basemodel')(expression)) -}}
{%- endmacro %}

{#- Column types (lower case) that hold a time without a time zone. -#}
{% macro plain_timestamp_types() -%}
  {{- return(['timestamp', 'timestamp without time zone', 'datetime', 'date', 'timestamp_ntz',
              'timestamp_s', 'timestamp_ms', 'timestamp_ns', 'timestamp_us']) -}}
{%- endmacro %}

{% macro default__try_cast_timestamp(expression) -%}
  {{ dbt.safe_cast(expression, dbt.type_timestamp()) }}
{%- endmacro %}

{% macro duckdb__try_cast_timestamp(expression) -%}
  {%- set text = basemodel.trim_blanks("cast(" ~ expression ~ " as varchar)") -%}
  {#- The offset can only follow a time (after ':MM' or ':SS[.f]'), so the
      end of a date such as 2024-01-05 is never read as offset -05. -#}
  {%- set offset = "regexp_extract(" ~ text ~ ", ':[0-9]{2}(?:[.][0-9]+)?(Z|[+-][0-9:]+)$', 1)" -%}
  {#- The local part, with seconds added to HH:MM (DuckDB < 1.1 cannot cast it). -#}
  {%- set local = "regexp_replace(replace(regexp_extract(" ~ text ~ ", '^[0-9-]+(?:[ T][0-9:.]+)?'), 'T', ' '), ' ([0-9]{2}:[0-9]{2})$', ' \\1:00')" %}
  (case when regexp_full_match({{ text }}, '{{ basemodel.iso_timestamp_pattern() }}') then
     try_cast({{ local }} as timestamp)
     - {{ basemodel.utc_offset_minutes(offset) }} * interval 1 minute
   end)
{%- endmacro %}

{% macro postgres__try_cast_timestamp(expression) -%}
  {%- set text = basemodel.trim_blanks("cast(" ~ expression ~ " as text)") -%}
  {%- set offset = "coalesce(substring(" ~ text ~ " from ':[0-9]{2}(?:[.][0-9]+)?(Z|[+-][0-9:]+)$'), '')" -%}
  {#- A failing cast aborts the whole query in Postgres, so each cast is
      guarded by a nested CASE (AND does not reliably short-circuit): the
      pattern first, then the day of the month (no 2024-02-30). -#}
  (case when {{ text }} ~ '{{ basemodel.iso_timestamp_pattern() }}' then
     case when cast(substr({{ text }}, 9, 2) as integer)
               <= extract(day from cast(substr({{ text }}, 1, 7) || '-01' as date)
                                   + interval '1 month' - interval '1 day') then
       cast(substring({{ text }} from '^[0-9-]+(?:[ T][0-9:.]+)?') as timestamp)
       - {{ basemodel.utc_offset_minutes(offset) }} * interval '1 minute'
     end
   end)
{%- endmacro %}

{% macro snowflake__try_cast_timestamp(expression) -%}
  {%- set text = basemodel.trim_blanks("to_varchar(" ~ expression ~ ")") -%}
  (case when regexp_like({{ text }}, '{{ basemodel.iso_timestamp_pattern() }}') then
     case when regexp_like({{ text }}, '.*:[0-9]{2}([.][0-9]+)?(Z|[+-][0-9:]+)')
          then convert_timezone('UTC', try_to_timestamp_tz({{ text }}))::timestamp_ntz
          else try_to_timestamp_ntz({{ text }})
     end
   end)
{%- endmacro %}

{% macro bigquery__try_cast_timestamp(expression) -%}
  {#- BigQuery reads an ISO string without offset as UTC, like the others. -#}
  {%- set text = basemodel.trim_blanks("cast(" ~ expression ~ " as string)") -%}
  (case when regexp_contains({{ text }}, r'{{ basemodel.iso_timestamp_pattern() }}')
        then safe_cast({{ text }} as timestamp) end)
{%- endmacro %}
