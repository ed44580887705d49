"""crossgroup.group"""
