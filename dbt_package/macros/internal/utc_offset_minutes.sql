{#- Minutes east of UTC of an offset text '', 'Z', '+HH', '+HHMM' or '+HH:MM'
    (or with '-'), as already checked by iso_timestamp_pattern. -#}
{% macro utc_offset_minutes(offset) -%}
  (case when {{ offset }} in ('', 'Z') then 0
        else (case when left({{ offset }}, 1) = '-' then -1 else 1 end)
             * (cast(substr({{ offset }}, 2, 2) as integer) * 60
                + case when length(replace({{ offset }}, ':', '')) = 5
                       then cast(right({{ offset }}, 2) as integer) else 0 end)
   end)
{%- endmacro %}
