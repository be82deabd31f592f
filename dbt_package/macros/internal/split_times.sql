{#-
  The split points, sorted, as normalised timestamp strings. The var
  `basemodel_split_times` is either a list of timestamps
  (['2024-03-01', '2024-04-01']) or rolling splits
  {start: '2024-01-01', end: '2024-06-01', every_days: 7}: start, then every
  `every_days` days up to and including `end`.
-#}
{% macro split_times() %}
  {%- set fail = exceptions.raise_compiler_error -%}
  {%- set value = var('basemodel_split_times', []) -%}
  {%- set times = [] -%}
  {%- if value is mapping -%}
    {%- for key in ['start', 'end', 'every_days'] -%}
      {%- if key not in value -%}
        {%- do fail("basemodel: rolling `basemodel_split_times` needs start, end and every_days, e.g. {start: '2024-01-01', end: '2024-06-01', every_days: 7}; missing " ~ key) -%}
      {%- endif -%}
    {%- endfor -%}
    {%- set every = value['every_days'] -%}
    {%- if every is not number or every <= 0 -%}
      {%- do fail("basemodel: `every_days` of `basemodel_split_times` must be a positive number; got " ~ every) -%}
    {%- endif -%}
    {%- set parse = modules.datetime.datetime.fromisoformat -%}
    {%- set first = parse(basemodel.parse_time_var('basemodel_split_times.start', value['start'])) -%}
    {%- set last = parse(basemodel.parse_time_var('basemodel_split_times.end', value['end'])) -%}
    {%- if last < first -%}
      {%- do fail("basemodel: `basemodel_split_times.end` is before its start") -%}
    {%- endif -%}
    {%- set step = modules.datetime.timedelta(days=every) -%}
    {%- set count = ((last - first) / step) | int + 1 -%}
    {%- if count > 10000 -%}
      {%- do fail("basemodel: rolling `basemodel_split_times` gives " ~ count ~ " splits; use a larger every_days") -%}
    {%- endif -%}
    {%- for i in range(count) -%}
      {%- do times.append((first + step * i).isoformat(sep=' ')) -%}
    {%- endfor -%}
  {%- else -%}
    {%- for time in ([value] if value is string else value) -%}
      {%- do times.append(basemodel.parse_time_var('basemodel_split_times', time)) -%}
    {%- endfor -%}
  {%- endif -%}
  {%- set unique_times = times | unique | sort -%}
  {%- if unique_times | length != times | length -%}
    {%- do fail("basemodel: `basemodel_split_times` lists the same split twice: " ~ times) -%}
  {%- endif -%}
  {{- return(unique_times) -}}
{% endmacro %}
