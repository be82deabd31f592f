{#- The text of a fuzz_events value with its white-space tokens decoded
    (see seeds/integrity/_integrity_seeds.yml): a seed cannot hold a value
    that is blank or only white space, so the seed spells them out. -#}
{% macro decode_fuzz_tokens(column) -%}
  {%- set decoded = namespace(sql=column) -%}
  {%- for token, value in [('<SP>', "' '"), ('<TAB>', 'chr(9)'), ('<LF>', 'chr(10)'),
                           ('<CR>', 'chr(13)'), ('<X10000>', "repeat('x', 10000)")] -%}
    {%- set decoded.sql = "replace(" ~ decoded.sql ~ ", '" ~ token ~ "', " ~ value ~ ")" -%}
  {%- endfor -%}
  {{- decoded.sql -}}
{%- endmacro %}
