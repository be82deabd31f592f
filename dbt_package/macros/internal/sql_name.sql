{#- A value turned into a lower-case SQL identifier part: 'Add to cart' ->
    'add_to_cart'. Used to name one label column per configured value. -#}
{% macro sql_name(value) -%}
  {%- set name = modules.re.sub('[^a-z0-9]+', '_', (value | string | lower)).strip('_') -%}
  {%- if name == '' -%}
    {%- do exceptions.raise_compiler_error("basemodel: cannot make a column name from the value '" ~ value ~ "'") -%}
  {%- endif -%}
  {{- return(name) -}}
{%- endmacro %}
