"""crossgroup.report"""
