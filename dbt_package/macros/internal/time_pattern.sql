{#-
  A strftime pattern (basemodel_time_pattern, e.g. '%d/%m/%Y %H:%M') turned,
  at compile time, into a regular expression with one capture group per
  directive: {'regex': '^...$', 'fields': ['day', 'month', ...]}.
  parse_event_time extracts the groups and assembles an ISO 8601 text that
  try_cast_timestamp then reads, so a pattern is read with the same strict
  rules (no 2024-02-30, no 24:00) on every adapter, and PostgreSQL's
  to_timestamp, which raises an error on a bad value and aborts the query,
  is never needed.

  Directives: %Y (4-digit year), %m, %d, %H (1 or 2 digits), %M, %S (2
  digits), %f (fraction of a second, 1-9 digits), %z (Z, +HH, +HHMM or
  +HH:MM), %b (Jan ... Dec, any case), %F (%Y-%m-%d), %T (%H:%M:%S) and %%.
  Any other directive stops compilation: use basemodel_time_format: sql with
  your own expression instead. %Y, %m (or %b) and %d are required.
-#}
{% macro time_pattern(pattern) %}
  {%- set fail = exceptions.raise_compiler_error -%}
  {%- set text = (pattern | string).replace('%F', '%Y-%m-%d').replace('%T', '%H:%M:%S') -%}
  {%- set directives = {
      'Y': ['year', '([0-9]{4})'],
      'm': ['month', '([0-9]{1,2})'],
      'b': ['month_name', '([A-Za-z]{3})'],
      'd': ['day', '([0-9]{1,2})'],
      'H': ['hour', '([0-9]{1,2})'],
      'M': ['minute', '([0-9]{2})'],
      'S': ['second', '([0-9]{2})'],
      'f': ['fraction', '([0-9]{1,9})'],
      'z': ['offset', '(Z|[+-][0-9:]{2,5})'],
  } -%}
  {%- set parts = ['^'] -%}
  {%- set fields = [] -%}
  {%- set state = {'directive': false} -%}
  {%- for char in text -%}
    {%- if state.directive -%}
      {%- do state.update({'directive': false}) -%}
      {%- if char == '%' -%}
        {%- do parts.append('%') -%}
      {%- elif char in directives -%}
        {%- set field, regex = directives[char] -%}
        {%- if field in fields -%}
          {%- do fail("basemodel: `basemodel_time_pattern` '" ~ pattern ~ "' has %" ~ char ~ " twice.") -%}
        {%- endif -%}
        {%- do fields.append(field) -%}
        {%- do parts.append(regex) -%}
      {%- else -%}
        {%- do fail("basemodel: `basemodel_time_pattern` '" ~ pattern ~ "' uses %" ~ char ~ ", which the package does not read. It reads %Y %m %b %d %H %M %S %f %z %F %T and %%; for anything else set `basemodel_time_format: sql` and `basemodel_time_expression` to your own SQL.") -%}
      {%- endif -%}
    {%- elif char == '%' -%}
      {%- do state.update({'directive': true}) -%}
    {%- elif modules.re.fullmatch('[A-Za-z0-9 ]', char) -%}
      {%- do parts.append(char) -%}
    {%- elif char in '[]\\^\'"' -%}
      {%- do fail("basemodel: `basemodel_time_pattern` '" ~ pattern ~ "' contains the character " ~ char ~ ", which the package cannot match the same way on every adapter; use `basemodel_time_format: sql` instead.") -%}
    {%- else -%}
      {#- One-character class: a literal in POSIX, RE2 and Java regexes alike. -#}
      {%- do parts.append('[' ~ char ~ ']') -%}
    {%- endif -%}
  {%- endfor -%}
  {%- if state.directive -%}
    {%- do fail("basemodel: `basemodel_time_pattern` '" ~ pattern ~ "' ends with a lone %; write %% for a percent sign.") -%}
  {%- endif -%}
  {%- if 'year' not in fields or 'day' not in fields or ('month' not in fields and 'month_name' not in fields)
        or ('month' in fields and 'month_name' in fields) -%}
    {%- do fail("basemodel: `basemodel_time_pattern` '" ~ pattern ~ "' needs a full date: %Y, one of %m or %b, and %d.") -%}
  {%- endif -%}
  {%- do parts.append('$') -%}
  {{- return({'regex': parts | join(''), 'fields': fields}) -}}
{% endmacro %}
