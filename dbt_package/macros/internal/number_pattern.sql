{#- The number grammar of try_cast_number as a regular expression: at most 38
    digits on each side of the point and an exponent of up to three digits
    (1e308 and 1e-120, as a double column reads when cast to text). Values
    beyond double precision that the grammar lets through (1e999) are caught
    by each adapter's range check after the cast. -#}
{% macro number_pattern() -%}
  ^[+-]?([0-9]{1,38}([.][0-9]{0,38})?|[.][0-9]{1,38})([eE][+-]?[0-9]{1,3})?$
{%- endmacro %}
