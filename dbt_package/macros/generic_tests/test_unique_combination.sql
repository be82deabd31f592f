{#- Fails for every combination of `columns` that occurs more than once.
    Give the arguments under `arguments:` (dbt >= 1.10 passes them as keyword
    arguments; dbt 1.8 and 1.9 pass the mapping itself, unpacked here), so
    the package parses without deprecation warnings on every supported dbt. -#}
{% test unique_combination(model, columns=none, arguments=none, column_name=none) %}
{%- set columns = columns if columns is not none else arguments['columns'] %}
select
    {{ columns | join(', ') }},
    count(*) as occurrences
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1
{% endtest %}
