{#-
  The event time from `expression` (a source column, or the SQL of
  basemodel_time_expression) as a timestamp without time zone in UTC; NULL
  when it cannot be read, which rejects the row as unparseable_timestamp.

  time_format:
    iso       try_cast_timestamp's strict ISO 8601 grammar (typed timestamp
              and date columns are used as they are)
    epoch_s   seconds since 1970-01-01 UTC, a number or numeric text
    epoch_ms  milliseconds since 1970-01-01 UTC, likewise (fractions kept to
              the microsecond); values outside years 1 to 9999 give NULL
    date      a date: a typed date (or timestamp, truncated) column, or text
              written YYYY-MM-DD exactly
    pattern   text in the strftime pattern `pattern` (time_pattern's result)
    sql       the expression is the user's SQL; its value (a timestamp, a
              date or ISO text) is read like iso

  `column` (a dbt Column, optional) is the source column's type.
-#}
{% macro parse_event_time(expression, time_format='iso', pattern=none, column=none) -%}
  {%- set string = dbt.type_string() -%}
  {%- set text = basemodel.trim_blanks('cast(' ~ expression ~ ' as ' ~ string ~ ')') -%}
  {%- if time_format in ('iso', 'sql') -%}
    {{- return(basemodel.try_cast_timestamp(expression, column if time_format == 'iso' else none)) -}}

  {%- elif time_format in ('epoch_s', 'epoch_ms') -%}
    {%- set per_second = 1 if time_format == 'epoch_s' else 1000 -%}
    {%- set number = basemodel.try_cast_number(expression, column) -%}
    {#- 0001-01-01 and 10000-01-01 in seconds since 1970: every adapter's
        timestamp holds that range. -#}
    {{- return("(case when " ~ number ~ " >= " ~ -62135596800 * per_second
               ~ " and " ~ number ~ " < " ~ 253402300800 * per_second ~ " then "
               ~ basemodel.timestamp_from_epoch_micros('round(' ~ number ~ ' * ' ~ (1000000 // per_second) ~ ')')
               ~ " end)") -}}

  {%- elif time_format == 'date' -%}
    {%- if column is not none and (column.dtype | lower) in basemodel.plain_timestamp_types() -%}
      {{- return('cast(cast(' ~ expression ~ ' as date) as ' ~ dbt.type_timestamp() ~ ')') -}}
    {%- endif -%}
    {#- Ten characters of the ISO grammar are a date and nothing else. -#}
    {{- return("(case when length(" ~ text ~ ") = 10 then " ~ basemodel.try_cast_timestamp(expression) ~ " end)") -}}

  {%- elif time_format == 'pattern' -%}
    {%- set groups = {} -%}
    {%- for field in pattern.fields -%}
      {%- do groups.update({field: basemodel.regex_group(text, pattern.regex, loop.index)}) -%}
    {%- endfor -%}
    {%- set two = "lpad({0}, 2, '0')" -%}
    {%- if 'month_name' in groups -%}
      {%- set names = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'] -%}
      {%- set month = ["(case lower(" ~ groups.month_name ~ ")"] -%}
      {%- for name in names -%}
        {%- do month.append(" when '" ~ name ~ "' then '" ~ ('0' ~ loop.index)[-2:] ~ "'") -%}
      {%- endfor -%}
      {%- do month.append(" end)") -%}
      {%- set month = month | join('') -%}
    {%- else -%}
      {%- set month = two.replace('{0}', groups.month) -%}
    {%- endif -%}
    {#- A missing group (no match) makes the whole text NULL. -#}
    {%- set iso = [groups.year, "'-'", month, "'-'", two.replace('{0}', groups.day), "' '",
                   two.replace('{0}', groups.hour) if 'hour' in groups else "'00'", "':'",
                   groups.minute if 'minute' in groups else "'00'", "':'",
                   groups.second if 'second' in groups else "'00'"] -%}
    {%- if 'fraction' in groups -%}{%- do iso.extend(["'.'", groups.fraction]) -%}{%- endif -%}
    {%- if 'offset' in groups -%}{%- do iso.append(groups.offset) -%}{%- endif -%}
    {{- return(basemodel.try_cast_timestamp('(' ~ iso | join(' || ') ~ ')')) -}}
  {%- endif -%}
  {%- do exceptions.raise_compiler_error("basemodel: unknown time format " ~ time_format) -%}
{%- endmacro %}
