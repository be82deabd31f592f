{#-
  Parse `expression` into a finite double precision number; NULL when it is
  not one. Text must be a plain decimal number such as 12, -3.5, .5, 1.2e3 or
  1e-120 (surrounding white space is ignored): '12,50', 'NaN', 'inf', '' and
  values beyond double precision (1e999) give NULL on every adapter, and
  values too small for it (1e-400) give 0.

  `column` (a dbt Column, optional) is the source column's type: integer and
  floating point columns are cast directly, without a round trip through
  text, and only NaN and infinity give NULL.
-#}
{% macro try_cast_number(expression, column=none) -%}
  {%- if column is not none and (column.is_float() or column.is_integer()) -%}
    {{- return(basemodel.finite_double('cast(' ~ expression ~ ' as ' ~ basemodel.type_double() ~ ')')) -}}
  {%- endif -%}
  {{- return(adapter.dispatch('try_cast_number', 'basemodel')(expression)) -}}
{%- endmacro %}

{#- `number` (a double) when it is finite, else NULL: NaN and infinity
    compare greater than every number on the adapters that have them. -#}
{% macro finite_double(number) -%}
  (case when abs({{ number }}) <= 1.7976931348623157e308 then {{ number }} end)
{%- endmacro %}

{% macro default__try_cast_number(expression) -%}
  {{ dbt.safe_cast(expression, basemodel.type_double()) }}
{%- endmacro %}

{% macro duckdb__try_cast_number(expression) -%}
  {%- set text = basemodel.trim_blanks("cast(" ~ expression ~ " as varchar)") -%}
  {#- DuckDB reads an out-of-range number as infinity. -#}
  (case when regexp_full_match({{ text }}, '{{ basemodel.number_pattern() }}')
        then {{ basemodel.finite_double("cast(" ~ text ~ " as double)") }} end)
{%- endmacro %}

{% macro postgres__try_cast_number(expression) -%}
  {%- set text = basemodel.trim_blanks("cast(" ~ expression ~ " as text)") -%}
  {%- set exact = "cast(" ~ text ~ " as numeric)" -%}
  {#- Postgres raises an error for a double beyond its range in either
      direction, so the exact value is checked first as numeric (the grammar
      keeps it small enough for numeric); each cast is guarded by its own
      CASE, as AND does not reliably short-circuit. -#}
  (case when {{ text }} ~ '{{ basemodel.number_pattern() }}' then
     case when abs({{ exact }}) <= 1.7976931348623157e308 then
       case when abs({{ exact }}) < 2.2250738585072014e-308 then cast(0 as double precision)
            else cast({{ exact }} as double precision)
       end
     end
   end)
{%- endmacro %}

{% macro snowflake__try_cast_number(expression) -%}
  {%- set text = basemodel.trim_blanks("to_varchar(" ~ expression ~ ")") -%}
  (case when regexp_like({{ text }}, '{{ basemodel.number_pattern() }}')
        then {{ basemodel.finite_double("try_to_double(" ~ text ~ ")") }} end)
{%- endmacro %}

{% macro bigquery__try_cast_number(expression) -%}
  {%- set text = basemodel.trim_blanks("cast(" ~ expression ~ " as string)") -%}
  (case when regexp_contains({{ text }}, r'{{ basemodel.number_pattern() }}')
        then {{ basemodel.finite_double("safe_cast(" ~ text ~ " as float64)") }} end)
{%- endmacro %}
