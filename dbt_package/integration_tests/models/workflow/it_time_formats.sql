-- basemodel.parse_event_time in every time format, compared with data_time_formats.
{%- set cases = [
    ['epoch_s', 'epoch_s', none],
    ['epoch_ms', 'epoch_ms', none],
    ['date', 'date', none],
    ['%d/%m/%Y %H:%M', 'pattern', basemodel.time_pattern('%d/%m/%Y %H:%M')],
    ['%b %d %Y', 'pattern', basemodel.time_pattern('%b %d %Y')],
    ['%FT%T.%f%z', 'pattern', basemodel.time_pattern('%FT%T.%f%z')],
    ['sql', 'sql', none],
] %}
{%- for label, time_format, pattern in cases %}
select
    time_format,
    raw_value,
    {%- if time_format == 'sql' %}
    {{ basemodel.parse_event_time("cast('2000-01-01' as date) + cast(raw_value as integer)", 'sql') }} as parsed
    {%- else %}
    {{ basemodel.parse_event_time('raw_value', time_format, pattern) }} as parsed
    {%- endif %}
from {{ ref('data_time_formats') }}
where time_format = '{{ label }}'
{% if not loop.last %}union all{% endif %}
{%- endfor %}
