"""crossgroup.maison"""
