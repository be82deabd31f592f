{#-
  Cleora entity vectors of a hypergraph, computed in the warehouse: one row
  per entity with entity_key and cleora_0 .. cleora_<n_components - 1>
  (double, L2-normalised). Equal, to float32 rounding, to

    CleoraEmbedder(n_components, n_iter=n_iter, random_state=seed).fit(rows)

  on the same hyperedges (one list column: the default clique relation and
  "left" propagation).

  incidence:      relation (a table or a CTE name) from cleora_incidence
  key_type:       'string' or 'integer': how Python sees the keys, which
                  decides their hash (see cleora_start_vectors)
  start_vectors:  optional relation (entity_key, cleora_0 ..) whose vectors
                  replace the hashed start vectors of their entities
                  (CleoraEmbedder's initial_vectors); others are ignored

  Usage, on events with one row per basket item:

    with incidence as (
        {{ basemodel.cleora_incidence(ref('events'), 'basket_id', 'product_id', is_list=false) }}
    )
    {{ basemodel.cleora_vectors('incidence', n_components=64, n_iter=3, seed=0) }}

  The query nests its steps as subqueries and reads `incidence` twice per
  step, so give it a materialised incidence (a table) when the graph is large.
-#}
{% macro cleora_vectors(incidence, n_components, n_iter, seed, key_type='string', start_vectors=none) -%}
{%- set entities = '(select distinct entity_key from ' ~ incidence ~ ' as cleora_incidence)' -%}
{%- set start = basemodel.cleora_start_vectors(entities, n_components, seed, key_type=key_type) -%}
{%- if start_vectors is not none -%}
  {%- set replaced -%}
select
    hashed.entity_key,
    {%- for i in range(n_components) %}
    case when given.entity_key is null then hashed.cleora_{{ i }} else given.cleora_{{ i }} end as cleora_{{ i }}{{ ',' if not loop.last }}
    {%- endfor %}
from ({{ start }}) as hashed
left join {{ start_vectors }} as given
    on hashed.entity_key = given.entity_key
  {%- endset -%}
  {%- set start = basemodel.cleora_normalize(replaced, 'entity_key', n_components) -%}
{%- endif -%}
{{ basemodel.cleora_propagate(incidence, '(' ~ start ~ ')', n_components, n_iter) }}
{%- endmacro %}
