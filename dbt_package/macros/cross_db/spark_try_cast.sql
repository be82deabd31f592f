{#- Spark variants of try_cast_timestamp and try_cast_number (see those files
    for the grammar). rlike finds the pattern anywhere in the text; the
    pattern's ^ and $ anchor it to the whole value. -#}
{% macro spark__try_cast_timestamp(expression) -%}
  {#- Offset-less values are read in spark.sql.session.timeZone: set it to UTC.
      Spark reads HH:MM alone but not HH:MM followed by an offset
      ('10:00-05:00', '10:00Z'), so seconds are added there first. -#}
  {%- set text = basemodel.trim_blanks("cast(" ~ expression ~ " as string)") -%}
  {%- set with_seconds = "regexp_replace(" ~ text ~ ", '^([0-9-]+[ T][0-9]{2}:[0-9]{2})(Z|[+-][0-9:]+)$', '$1:00$2')" %}
  (case when {{ text }} rlike '{{ basemodel.iso_timestamp_pattern() }}'
        then try_cast({{ with_seconds }} as timestamp) end)
{%- endmacro %}

{% macro spark__try_cast_number(expression) -%}
  {#- Spark reads an out-of-range number as infinity. -#}
  {%- set text = basemodel.trim_blanks("cast(" ~ expression ~ " as string)") -%}
  (case when {{ text }} rlike '{{ basemodel.number_pattern() }}'
        then {{ basemodel.finite_double("try_cast(" ~ text ~ " as double)") }} end)
{%- endmacro %}
