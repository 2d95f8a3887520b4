from django.apps import AppConfig


class GoldsetsConfig(AppConfig):
    name = "goldsets"
    verbose_name = "Golden sets"

    def ready(self) -> None:
        # runs sits below this app: it finds the golden-set items to label through this provider.
        from goldsets.item_sets import golden_set_item_set
        from runs.item_sets import item_set_provider_register

        item_set_provider_register("golden_set", golden_set_item_set)
