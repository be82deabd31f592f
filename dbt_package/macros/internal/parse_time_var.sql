{#- A timestamp given in a var ('2024-03-01' or '2024-03-01 12:00:00'),
    checked and normalised to 'YYYY-MM-DD HH:MM:SS[.ffffff]' so it can be
    written into SQL as a literal; none stays none. -#}
{% macro parse_time_var(var_name, value) -%}
  {%- if value is none -%}{{- return(none) -}}{%- endif -%}
  {%- set text = value | string | trim -%}
  {%- if not modules.re.fullmatch('[0-9]{4}-[0-9]{2}-[0-9]{2}([ T][0-9]{2}:[0-9]{2}(:[0-9]{2}([.][0-9]{1,6})?)?)?', text) -%}
    {%- do exceptions.raise_compiler_error("basemodel: `" ~ var_name ~ "` must be a timestamp written 'YYYY-MM-DD' or 'YYYY-MM-DD HH:MM[:SS]' (UTC); got '" ~ value ~ "'") -%}
  {%- endif -%}
  {%- set parsed = modules.datetime.datetime.fromisoformat(text) -%}
  {{- return(parsed.isoformat(sep=' ')) -}}
{%- endmacro %}
