{#- The number grammar of try_cast_number as a regular expression. At most 38
    digits on each side of the point and a two-digit exponent keep every value
    inside double precision, so no adapter's cast can overflow. -#}
{% macro number_pattern() -%}
  ^[+-]?([0-9]{1,38}([.][0-9]{0,38})?|[.][0-9]{1,38})([eE][+-]?[0-9]{1,2})?$
{%- endmacro %}
