{#- `query` (columns `key` and cleora_0 .. cleora_<n_components - 1>) with
    every vector divided by its L2 norm; zero vectors stay zero, as in
    sklearn_basemodel's normalize_rows (which also multiplies by the inverse
    norm: one division per row instead of one per value). -#}
{% macro cleora_normalize(query, key, n_components) -%}
{%- set squares = [] -%}
{%- for i in range(n_components) -%}
  {%- do squares.append('cleora_' ~ i ~ ' * cleora_' ~ i) -%}
{%- endfor -%}
select
    {{ key }},
    {%- for i in range(n_components) %}
    cleora_{{ i }} * cleora_inverse_norm as cleora_{{ i }}{{ ',' if not loop.last }}
    {%- endfor %}
from (
    select
        *,
        case
            when {{ squares | join(' + ') }} > 0
            then 1 / sqrt({{ squares | join(' + ') }})
            else 0
        end as cleora_inverse_norm
    from ({{ query }}) as cleora_unnormalised
    {{ basemodel.cleora_fence() }}
) as cleora_norms
{%- endmacro %}
